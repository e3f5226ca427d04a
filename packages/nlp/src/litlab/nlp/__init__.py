"""litlab.nlp."""
