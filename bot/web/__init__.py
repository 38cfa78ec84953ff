"""The moderators' web console (see bot/web/server.py); its server is imported only when on."""
