"""Identity resolution: standardisation, the Splink model, clustering, citizen ids, survivorship."""
