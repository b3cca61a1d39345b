"""Paper Review GPT web app (Gradio). Run with `python -m app`."""
