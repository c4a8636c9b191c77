"""A tiny shop: customers and their orders, on peewee-async."""
