"""Status drafts written by an OpenAI-compatible model, posted to Asana only after a person
approves them. `client` is the one outbound seam to the model; `drafts` the business rules;
`prompt.txt` the prompt template; `fake_server` a small compatible server for tests."""
