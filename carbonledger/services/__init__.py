"""The four services of the carbon inclusion pipeline."""
