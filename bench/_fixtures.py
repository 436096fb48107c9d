"""Fixtures the benchmarks and the tests share: synthetic campaigns and a throwaway database.

One home for them, beside the benchmark scripts (which import it as they import
``_report``); ``tests/conftest.py`` puts ``bench/`` on the import path. They stay out of the
``adgen`` package: nothing here is for a running system.

- ``ACME`` / ``HUAWEI``: a training campaign per locale with headlines that win (a number or
  a call to action) and headlines that lose (flat statements);
- ``STRIDE`` / ``WATCH``: a generation brief per locale;
- :func:`throwaway_database`: a new, migrated PostgreSQL database, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from adgen.brief import Brief
from adgen.db import migrate

#: The server that hosts throwaway databases (``ADGEN_TEST_PG_URL`` overrides it).
PG_ADMIN_URL = os.environ.get(
    "ADGEN_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)

ACME = Brief(
    name="Acme runners",
    product="Acme running shoes",
    benefits=["light", "fast"],
    brand="Acme",
    audience="runners",
)
#: Headlines with a number or a call to action: these win.
ACME_WINNERS = [
    "Save 30% on Acme runners - shop now!",
    "Run 2x lighter: buy Acme today",
    "Acme shoes from $49 - order now",
    "Get 20% off Acme, shop today",
    "Top 5 reasons runners pick Acme - buy now",
    "Acme: 3 colors, free shipping, shop now",
    "Try Acme for 30 days - order today",
]
#: Flat headlines without either: these lose.
ACME_LOSERS = [
    "Acme shoes are shoes",
    "Running is something people do",
    "Acme makes footwear products",
    "Shoes for feet by Acme",
    "An Acme shoe exists",
    "The shoe company Acme",
    "Acme has running shoes",
]

HUAWEI = Brief(
    name="华为手表",
    product="华为智能手表",
    benefits=["防水", "超长待机"],
    brand="华为",
    audience="运动爱好者",
    locale="zh",
)
#: Chinese headlines with a number or a call to action (they win) and flat ones (they lose).
HUAWEI_WINNERS = [
    "华为手表限时8折，立即抢购！",
    "续航14天，华为手表现在下单",
    "防水50米，华为手表马上入手",
    "运动就选华为手表，今天下单立减200元",
    "华为手表新品上市，前100名送表带",
    "3大理由选华为手表，立即购买",
    "华为手表免息分期，点击购买",
]
HUAWEI_LOSERS = [
    "华为手表是一块手表",
    "手表可以看时间",
    "华为生产手表产品",
    "这是一款手表",
    "华为有手表",
    "手表的公司华为",
    "华为手表存在",
]

STRIDE = Brief(
    name="shoes",
    product="Trailrunner X2 waterproof running shoes",
    benefits=["lightweight", "grips on wet rock"],
    brand="Stride",
    brand_voice="energetic, friendly",
    audience="weekend trail runners",
)
WATCH = Brief(
    name="watch",
    product="智能手表",
    benefits=["防水", "超长待机"],
    brand="华为",
    brand_voice="亲切、专业",
    audience="喜欢运动的年轻人",
    locale="zh",
)


@contextmanager
def throwaway_database(admin_url: str = PG_ADMIN_URL, prefix: str = "adgen_tmp") -> Iterator[str]:
    """URL of a new, migrated PostgreSQL database, dropped (connections and all) afterwards."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = admin.url.set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
