"""The static website of minswin: `make site` (scripts/make_site.py) builds it into site/."""
