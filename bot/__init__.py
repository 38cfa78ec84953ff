"""The platform-neutral core of the ITSM community bot."""
