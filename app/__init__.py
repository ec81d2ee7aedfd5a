"""ragline application layer: settings, models, the LLM client, pipeline wiring, REST API and CLI."""
