"""A library app whose database is built by peewee-migrate migrations."""
