"""Plain ``nn.Module``s for text: a GPT, recurrent classifiers and Hugging Face wrappers."""
