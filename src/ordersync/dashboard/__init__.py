"""The read-only local dashboard (``ordersync dashboard``): sync health, orders and revenue per day, the orders
table, each order with its lines, payments, history and raw record, and the run history."""

from ordersync.dashboard.app import create_app, is_loopback

__all__ = ["create_app", "is_loopback"]
