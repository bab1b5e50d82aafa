"""Whether ``wandb.init`` would find a login, read from the places wandb reads (without importing wandb):
``logger.wandb`` falls back to tensorboard with one warning when it would not (:func:`aesop.options.check_start_up`).
wandb's own readers are private (``wandb.sdk.lib.wbauth``); ``tests/test_official.py`` checks these against them."""

from __future__ import annotations

import configparser
import importlib.util
import netrc
import os
from pathlib import Path
from urllib.parse import urlsplit

from aesop.errors import AesopError
from aesop.utils import warn

__all__ = ['check_wandb', 'wandb_host', 'wandb_login', 'wandb_mode_set']


def wandb_mode_set() -> bool:
    """``WANDB_MODE`` (offline, disabled, online) or ``WANDB_DISABLED`` is set: wandb's own choice, left to it."""
    disabled = os.environ.get('WANDB_DISABLED', '').strip().lower() in ('1', 'true', 'yes')
    return bool(os.environ.get('WANDB_MODE')) or disabled


def _settings() -> dict[str, str]:
    """The ``[default]`` section of wandb's settings file (``wandb login --host`` writes ``base_url`` there):
    ``$WANDB_CONFIG_DIR/settings``, else ``~/.config/wandb/settings``; empty when missing or unreadable."""
    folder = os.environ.get('WANDB_CONFIG_DIR') or Path('~', '.config', 'wandb').expanduser()
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(Path(folder) / 'settings')
    except (configparser.Error, OSError, UnicodeDecodeError):
        return {}
    return dict(parser['default']) if parser.has_section('default') else {}


def wandb_host(settings: dict[str, str] | None = None) -> str:
    """The wandb server's host (``WANDB_BASE_URL``, wandb's settings file, else wandb's cloud)."""
    settings = _settings() if settings is None else settings
    url = os.environ.get('WANDB_BASE_URL') or settings.get('base_url') or 'https://api.wandb.ai'
    return urlsplit(url.strip()).netloc


def wandb_login() -> str | None:
    """Where ``wandb.init`` would find a login, or ``None``: the sources wandb reads, in its order —
    ``WANDB_API_KEY`` / ``WANDB_IDENTITY_TOKEN_FILE``, the netrc entry for the server that ``wandb login``
    writes (``$NETRC``, else ``~/.netrc``, else ``~/_netrc``), an ``api_key`` in wandb's settings file."""
    for name in ('WANDB_API_KEY', 'WANDB_IDENTITY_TOKEN_FILE'):
        if os.environ.get(name):
            return name
    settings = _settings()
    candidates = [os.environ['NETRC']] if os.environ.get('NETRC') else ['~/.netrc', '~/_netrc']
    for candidate in candidates:
        path = Path(candidate).expanduser()
        try:
            entry = netrc.netrc(path).authenticators(wandb_host(settings))
        except FileNotFoundError:
            continue
        except (OSError, netrc.NetrcParseError, UnicodeDecodeError):
            break  # wandb reads the first file that exists; an unreadable one is no login
        if entry and entry[2]:
            return str(path)
        break
    return 'settings' if settings.get('api_key') else None


def check_wandb(opt: dict) -> None:
    """``logger.wandb`` needs the wandb package, tensorboard (wandb syncs basicsr's tensorboard log) and,
    when wandb runs online, a login: without one, ``wandb.init`` stops the run with a traceback
    (``UsageError: No API key configured``), so the run goes on with tensorboard only, after one warning.
    ``WANDB_MODE`` set (``offline``, ``disabled``, or ``online`` to skip this check) is left to wandb."""
    logger_opt = opt.get('logger') or {}
    wandb_opt = logger_opt.get('wandb') or {}
    if not opt.get('is_train', True) or wandb_opt.get('project') is None or 'debug' in opt.get('name', ''):
        return
    if importlib.util.find_spec('wandb') is None:
        warn(opt, "logger.wandb is set but wandb is not installed (pip install -e '.[wandb]'): tensorboard only")
        wandb_opt['project'] = None
    elif logger_opt.get('use_tb_logger') is not True:
        raise AesopError('logger.wandb needs logger.use_tb_logger: true (wandb uploads the tensorboard log)')
    elif not wandb_mode_set() and wandb_login() is None:
        warn(
            opt,
            f'logger.wandb is set but wandb is not logged in (no WANDB_API_KEY, no entry for {wandb_host()} '
            'in the netrc file): tensorboard only; run `wandb login`, or set WANDB_MODE=offline for a local '
            'wandb run that `wandb sync` uploads later',
        )
        wandb_opt['project'] = None
