"""Versioned warehouse migrations: ``NNNN_name.sql`` files applied in order by ``warehouse.db``."""
