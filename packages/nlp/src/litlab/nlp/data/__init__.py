"""Text DataModules: characters, classification files and packed language-model corpora."""
