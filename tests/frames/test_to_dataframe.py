"""tk.to_dataframe: models, rows and mappings already in memory, no I/O."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from toolkit import queries
from toolkit.models import User


async def test_to_dataframe_takes_models_rows_and_mappings(session: AsyncSession) -> None:
    users = [await queries.create_user(session, f"m{i}@example.com", f"M{i}") for i in range(2)]
    models = tk.to_dataframe(users)
    assert list(models.columns) == ["id", "email", "name", "is_active", "created_at"]
    assert models["name"].tolist() == ["M0", "M1"]

    rows = (await session.execute(select(User.id, User.name).order_by(User.id))).all()
    from_rows = tk.to_dataframe(rows)
    assert list(from_rows.columns) == ["id", "name"]
    assert len(from_rows) == 2

    mappings = tk.to_dataframe([{"a": 1}, {"a": 2}])
    pd.testing.assert_frame_equal(mappings, pd.DataFrame({"a": [1, 2]}))
    assert tk.to_dataframe([]).empty
