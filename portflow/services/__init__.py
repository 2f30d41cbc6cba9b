"""Use cases over the core and the adapters: reports, throughput drops, backfill."""
