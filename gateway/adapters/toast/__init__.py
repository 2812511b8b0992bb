"""Toast (toasttab.com) restaurant POS: stock and menus webhooks."""

from __future__ import annotations

from posgate.gateway.adapters.toast.adapter import ToastAdapter

__all__ = ["ToastAdapter"]
