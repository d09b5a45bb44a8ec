"""What people read about models and data: evaluation lines, model comparisons, dataset summaries and the
confusion explorer, embedding maps, duplicate reports, the presentation story, its figures and the deck,
and the README's numbers table.

Layer 6: imports every layer below it (`tasks` to `training`) and this package; never the CLI or the app.
"""
