"""Personalised, grounded explanations: facts of the data, sentences, and their checking."""
