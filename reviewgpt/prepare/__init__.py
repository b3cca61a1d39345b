"""Document -> what a model reads: the token budget and the Llama 3.1 chat prompt."""
