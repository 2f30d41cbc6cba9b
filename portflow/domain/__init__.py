"""The pure core: event parsing and validation, calendar periods, aggregate increments, reports."""
