"""ordersync: every order from Frontcore, e-guma, Firespring and Prio in one database."""

__version__ = "0.1.0"
