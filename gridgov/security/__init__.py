"""Accounts, roles, passwords, tokens and personal-data encryption: pure logic, no web, no SQL."""
