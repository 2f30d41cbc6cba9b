"""The Faust side of portflow: the application, its agents and the batch processor."""
