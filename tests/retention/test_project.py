"""The project as an operator meets it: settings, deploy checks, migrations, set-up commands."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command

from retention.sales import summaries
from tests.factories import CustomerFactory, OrderFactory

ROOT = Path(__file__).resolve().parents[2]


def production_env(**env) -> dict[str, str]:
    """The environment without the test settings' defaults (tests/settings.py sets them)."""
    clean = {k: v for k, v in os.environ.items()
             if k not in {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE"} and not k.startswith("SECURE_")}
    return {**clean, "DJANGO_SETTINGS_MODULE": "retention.settings", **env}


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with the production settings module and `env`."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env=production_env(**env))


@pytest.mark.parametrize(
    "start",
    ["import retention.wsgi",  # gunicorn or runserver loading the application
     "from django.core.management import execute_from_command_line; "
     "execute_from_command_line(['manage.py', 'check', '--deploy'])"],
)
def test_production_refuses_to_start_without_a_secret_key(tmp_path, start):
    result = run_python(start, DEBUG="0", RETENTION_VAR_DIR=str(tmp_path))

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_tooling_that_only_reads_the_project_runs_without_a_secret_key(tmp_path):
    """makemigrations --check (CI, pre-commit hooks) needs no secret."""
    result = run_python(
        "from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'makemigrations', '--check', '--dry-run'])",
        DEBUG="0", RETENTION_VAR_DIR=str(tmp_path),
    )

    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_a_secret_key_can_come_from_a_file(tmp_path):
    (tmp_path / "key").write_text("from-a-file\n")

    result = run_python(
        "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)",
        DEBUG="0", SECRET_KEY_FILE=str(tmp_path / "key"), RETENTION_VAR_DIR=str(tmp_path),
    )

    assert result.stdout.strip() == "from-a-file"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("EMAIL_PORT", "smtp", "EMAIL_PORT='smtp' is not a whole number"),
        ("RETENTION_ACTIVITY_WINDOW_DAYS", "0", "RETENTION_ACTIVITY_WINDOW_DAYS=0 must be at least 1"),
        ("RETENTION_CURRENCY", "RANDS", "RETENTION_CURRENCY='RANDS' is not an ISO 4217 code"),
        ("TIME_ZONE", "Mars/Base", "TIME_ZONE='Mars/Base' is not a time zone name"),
        ("LOG_LEVEL", "chatty", "LOG_LEVEL='CHATTY' is not DEBUG, INFO, WARNING or ERROR"),
        ("RETENTION_IMPORT_WORK_MEM", "lots",
         "RETENTION_IMPORT_WORK_MEM='lots' is not a size like 256MB"),
        ("IMPORT_WORK_MEM", "lots", "IMPORT_WORK_MEM='lots' is not a size like 256MB"),  # old name
        ("DATABASE_URL", "mysqlx://foo", "DATABASE_URL cannot be read"),
        ("RETENTION_NIGHTLY_HOUR", "25", "RETENTION_NIGHTLY_HOUR=25 must be an hour from 0 to 23"),
    ],
)
def test_a_setting_that_cannot_be_read_stops_start_up(tmp_path, name, value, message):
    env = {"SECRET_KEY": "x", "DEBUG": "1", "RETENTION_VAR_DIR": str(tmp_path), name: value}
    result = run_python("import django; django.setup()", **env)

    assert result.returncode != 0 and message in result.stderr


@pytest.mark.parametrize(("old", "new", "value"), [
    ("NEW_OFFERING_WINDOW_DAYS", "RETENTION_NEW_OFFERING_WINDOW_DAYS", 30),
    ("IMPORT_WORK_MEM", "RETENTION_IMPORT_WORK_MEM", "64MB"),
    ("ORDERS_BULK_MAX", "RETENTION_ORDERS_BULK_MAX", 50),
    ("NIGHTLY_HOUR", "RETENTION_NIGHTLY_HOUR", 4),
])
def test_a_setting_set_by_its_old_name_still_works_and_check_says_to_rename_it(
        tmp_path, old, new, value):
    env = {"SECRET_KEY": "x", "DEBUG": "1", "RETENTION_VAR_DIR": str(tmp_path), old: str(value)}
    read = run_python("import django; django.setup(); from django.conf import settings; "
                      f"print(repr(settings.{new}))", **env)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == repr(value)

    check = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True,
                           text=True, env=production_env(**env))
    assert check.returncode == 0
    assert f"(retention.W001) The setting {old} is now {new}." in check.stderr


def test_the_new_name_wins_over_the_old_one(tmp_path):
    result = run_python(
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.RETENTION_ORDERS_BULK_MAX, settings.DEPRECATED)",
        SECRET_KEY="x", DEBUG="1", RETENTION_VAR_DIR=str(tmp_path), ORDERS_BULK_MAX="5",
        RETENTION_ORDERS_BULK_MAX="7")
    assert result.stdout.strip() == "7 []"


def test_deploy_check_reports_only_the_hsts_preload_choice(tmp_path):
    """README explains W021: preloading commits the whole domain to HTTPS, so it is opt-in."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, capture_output=True,
        text=True, env=production_env(DEBUG="0", SECRET_KEY="k" * 60 + "-long-and-random-enough",
                                      RETENTION_VAR_DIR=str(tmp_path)),
    )

    issues = [line for line in result.stderr.splitlines() if line.startswith("?: (")]
    assert [issue.split(")")[0] for issue in issues] == ["?: (security.W021"], result.stderr


@pytest.mark.django_db
def test_every_model_change_has_a_migration():
    call_command("makemigrations", "--check", "--dry-run", stdout=io.StringIO())


@pytest.mark.django_db
def test_run_nightly_repairs_stale_summaries_and_is_safe_to_rerun():
    customer = CustomerFactory()
    OrderFactory(customer=customer)  # written straight to the table: the summary lags
    out = io.StringIO()

    call_command("run_nightly", "--date", "2025-03-01", stdout=out)

    assert "customer summaries: 1 customers checked, 1 corrected" in out.getvalue()
    assert not summaries.stale().exists()
    again = io.StringIO()
    call_command("run_nightly", "--date", "2025-03-01", stdout=again)
    assert "customer summaries: customers with changed orders checked, 0 corrected" in again.getvalue()


def test_run_nightly_rejects_a_bad_date():
    with pytest.raises(CommandError, match="--date '2025-02-30' is not a date"):
        call_command("run_nightly", "--date", "2025-02-30")


@pytest.mark.django_db
def test_create_manager_prints_the_same_login_each_time(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first, second = io.StringIO(), io.StringIO()

    call_command("create_manager", stdout=first)
    call_command("create_manager", stdout=second)

    assert first.getvalue().split("  (")[0] == second.getvalue().split("  (")[0]
    password = (tmp_path / "manager-password.txt").read_text().strip()
    assert f"Manager login: manager / {password}" in first.getvalue()
    user = User.objects.get(username="manager")
    assert user.check_password(password) and user.is_staff and not user.is_superuser
    managers = Group.objects.get(name="Managers")
    assert user.groups.filter(pk=managers.pk).exists()
    assert managers.permissions.filter(codename="view_order").exists()
    assert not managers.permissions.filter(codename="change_order").exists()


@pytest.mark.django_db
def test_the_nightly_pipeline_is_scheduled_in_the_database_where_staff_edit_it():
    from django_celery_beat.models import PeriodicTask

    from retention import tasks  # noqa: F401  (workers import it by autodiscovery)
    from retention.celery import app

    task = PeriodicTask.objects.get(name="Nightly pipeline")

    assert task.enabled and task.task == "retention.tasks.run_nightly"
    assert (task.crontab.hour, task.crontab.minute) == ("2", "0")
    assert task.task in app.tasks  # the name the schedule calls is a registered task


@pytest.mark.django_db
def test_create_manager_does_not_print_a_password_that_was_changed(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("create_manager", stdout=io.StringIO())
    user = User.objects.get(username="manager")
    user.set_password("changed-by-the-manager-1")
    user.save()
    out = io.StringIO()

    call_command("create_manager", stdout=out)

    assert "password was changed after it was generated" in out.getvalue()
    assert (tmp_path / "manager-password.txt").read_text().strip() not in out.getvalue()


@pytest.mark.django_db
def test_create_manager_refuses_bad_names_and_the_api_client(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("create_api_client", "sales", stdout=io.StringIO())

    with pytest.raises(CommandError, match="is the API client of the sales platform"):
        call_command("create_manager", "--username", "sales", stdout=io.StringIO())
    with pytest.raises(CommandError, match="Enter a valid username"):
        call_command("create_manager", "--username", "bad name/../x", stdout=io.StringIO())
    assert not User.objects.get(username="sales").has_usable_password()


@pytest.mark.parametrize(("args", "site_url"), [
    ([], "http://127.0.0.1:8000"),
    (["PORT=8100"], "http://127.0.0.1:8100"),
    (["HOST=0.0.0.0", "PORT=8100"], "http://127.0.0.1:8100"),
    (["PORT=8100", "SITE_URL=https://courses.example.com"], "https://courses.example.com"),
])
def test_make_run_points_the_links_it_hands_out_at_its_own_server(args, site_url):
    """make run's links (customers' pages, emails, the manager's login) follow HOST and PORT."""

    env = {key: value for key, value in os.environ.items() if key != "SITE_URL"}
    shown = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval",
         'show-site-url: ; @echo "$$SITE_URL"', "show-site-url", *args],
        cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
        check=True)
    assert shown.stdout.strip() == site_url
