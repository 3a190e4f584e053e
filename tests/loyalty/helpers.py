"""What the loyalty tests share: a program with rules and tiers, and importing orders."""

import io
from decimal import Decimal

from django.core.management import call_command

from loyalty.models import Program, Reward, Rule, Tier

HEADER = "order_id,customer_id,ordered_at,amount,email,name,status,items,coupon_code,currency\n"


def program(**settings) -> Program:
    program = Program.current()
    for name, value in settings.items():
        setattr(program, name, value)
    program.save()
    return program


def per_amount(points=1, **extra) -> Rule:
    return Rule.objects.create(code=extra.pop("code", "spend"), title="Points per rand",
                               kind=Rule.Kind.PER_AMOUNT, points=points, **extra)


def three_tiers():
    return [Tier.objects.create(code="bronze", title="Bronze", threshold=0),
            Tier.objects.create(code="silver", title="Silver", threshold=1000,
                                multiplier=Decimal("1.25")),
            Tier.objects.create(code="gold", title="Gold", threshold=3000,
                                multiplier=Decimal("1.5"), discount_percent=10)]


def reward(points=100, **extra) -> Reward:
    return Reward.objects.create(code=extra.pop("code", "ten-off"), title=extra.pop(
        "title", "10 % off"), kind=extra.pop("kind", Reward.Kind.PERCENT_OFF),
        value=Decimal("10"), points=points, **extra)


def import_csv(tmp_path, rows: str, *args) -> str:
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + rows)
    out = io.StringIO()
    call_command("import_orders", str(path), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()
