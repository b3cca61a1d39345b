"""Paper Review GPT's core package, grouped in the order data flows:

    ingest    PDF (or dataset record) -> Document
    prepare   Document -> the text and prompt a model reads (budget, Llama 3.1 chat)
    generate  prompt -> review text (local engine, suppression, GPT side through `openai`)
    format    the review schemas and the review format (render / parse)
    compare   pairwise judge and the evaluation stages
    training  data prep and SFT (reuses ingest/prepare/format)
    testing   scaffolding for tests and demos (tiny models, a locally built tokenizer)

`config` and `errors` are shared leaves. Imports go one way: a group imports only groups above it,
plus `format`, `config` and `errors`.
"""
