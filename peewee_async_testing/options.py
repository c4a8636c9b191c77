"""TransactionTestCase's options, named once: for the case, the unittest class and the ``peewee_db`` marker."""

from __future__ import annotations

#: The keyword options of TransactionTestCase (attributes of AioDatabaseTestCase, the marker's keywords).
CASE_OPTIONS = ("allow_transactions", "autosavepoint", "reset_sequences")
