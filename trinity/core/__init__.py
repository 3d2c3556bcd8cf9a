"""The layer every Trinity package may import, and which imports none of them.

* :mod:`trinity.core.types` -- column types (one UTC datetime type, JSON/JSONB) and UTC helpers;
* :mod:`trinity.core.tables` -- every table of Trinity's database as SQLAlchemy Core;
* :mod:`trinity.core.urls` -- database URL normalisation;
* :mod:`trinity.core.settings` -- the settings model;
* :mod:`trinity.core.config` -- the one resolver of settings (flags > environment >
  ``trinity.config.yml`` > defaults).

Nothing is imported here, so ``import trinity.core.settings`` does not pay for SQLAlchemy.
"""
