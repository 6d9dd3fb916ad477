"""The producer: record accumulator, partitioners, sender, idempotence and transactions."""
