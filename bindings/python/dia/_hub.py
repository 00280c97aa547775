"""Resolve Hugging Face hub ids ("nari-labs/Dia-1.6B-0626", "descript/dac_44khz", optionally
"org/name@revision") to a snapshot directory of the local hub cache. Nothing is downloaded here
(`dia download ORG/NAME` fills the cache).

The cache is $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
~/.cache/huggingface/hub, laid out as the hub client does:
    models--{org}--{name}/refs/{revision}   (a file holding the commit hash)
    models--{org}--{name}/snapshots/{commit}/...
"""
import os
import re

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9._/-]+)?$")


def hub_cache_dir():
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "huggingface", "hub")


def is_hub_id(s):
    return bool(_ID.match(s)) and not s.startswith((".", "/"))


def resolve(model):
    """A local path as given (if it exists or is not an ORG/NAME id), else the cached snapshot of
    the hub id `model`; FileNotFoundError naming what was looked for if it is not cached."""
    model = os.fspath(model)
    if os.path.exists(model):
        return model
    if not is_hub_id(model):
        return model  # let the library report the missing path (DiaError, DIA_ERR_IO)
    repo_id, _, revision = model.partition("@")
    revision = revision or "main"
    org, name = repo_id.split("/")
    repo = os.path.join(hub_cache_dir(), "models--%s--%s" % (org, name))
    snapshots = os.path.join(repo, "snapshots")
    if not os.path.isdir(snapshots):
        raise FileNotFoundError("%s is not in the local Hugging Face cache (%s); fetch it with `dia download %s`"
                                % (repo_id, repo, repo_id))
    ref = os.path.join(repo, "refs", revision)
    if os.path.isfile(ref):
        with open(ref) as f:
            commit = f.read().strip()
    else:
        commit = revision  # a commit hash given directly, or no refs file at all
    snap = os.path.join(snapshots, commit)
    if os.path.isdir(snap):
        return snap
    if revision == "main" and not os.path.isfile(ref):
        snaps = [os.path.join(snapshots, d) for d in os.listdir(snapshots)]
        snaps = [d for d in snaps if os.path.isdir(d)]
        if snaps:  # no refs/main: the most recently written snapshot
            return max(snaps, key=os.path.getmtime)
    raise FileNotFoundError("revision %s of %s is not in the local Hugging Face cache (%s)" % (revision, repo_id, repo))
