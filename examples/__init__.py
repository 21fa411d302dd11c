"""The stores of applications moving onto chatkeep, each rewritten on chatkeep_client (see
README.md here). They import the client only, never the service."""
