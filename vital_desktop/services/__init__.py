"""One module per stage; plain Python, no Qt. Verbs take the store and the acting user."""
