"""Shopify payloads → canonical commands.

SKUs are looked up by Shopify's global ids (`gid://shopify/ProductVariant/…`,
`gid://shopify/InventoryItem/…`, `gid://shopify/Product/…`): inventory webhooks name the
inventory item while orders and refunds name the variant, and the two numeric id spaces
may overlap. Stores are looked up by the plain location id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from posgate.contracts import catalog, common, inventory, orders
from posgate.gateway.adapters import commands
from posgate.gateway.adapters.base import CanonicalCommand, EventIdentity, MappingLookup, PayloadError
from posgate.gateway.adapters.money import decimal_money
from posgate.gateway.adapters.shopify import models

PROVIDER = "shopify"
# Restock types that put refunded items back on the shelf. "cancel" returns items that were
# never fulfilled: in posgate the order's cancel releases them, so moving stock would count twice.
RESTOCKING = frozenset({"return", "legacy_restock"})
_CHANNELS = {
    "web": common.pb.CHANNEL_WEB,
    "pos": common.pb.CHANNEL_POS,
    "iphone": common.pb.CHANNEL_MOBILE_APP,
    "android": common.pb.CHANNEL_MOBILE_APP,
}


def gid(kind: str, shopify_id: str) -> str:
    """Shopify's global id of an object (`gid("ProductVariant", "808950810")`)."""
    return f"gid://shopify/{kind}/{shopify_id}"


@dataclass(frozen=True, slots=True)
class Lookup:
    """Mapping lookups of one shop, raising `MappingMissing` for unmapped ids."""

    provider: str
    shop: str
    mapping: MappingLookup

    def store(self, location_id: str) -> str:
        """The canonical store of a Shopify location."""
        return commands.require_store(self.mapping, self.provider, self.shop, location_id)

    def sku(self, kind: str, shopify_id: str) -> str:
        """The canonical SKU of a variant, inventory item or product."""
        return commands.require_sku(self.mapping, self.provider, self.shop, gid(kind, shopify_id))


def inventory_commands(
    identity: EventIdentity, tenant: str, level: models.InventoryLevel, lookup: Lookup
) -> list[CanonicalCommand]:
    """SetCounts of `available` at the location; nothing when the item is not tracked."""
    if level.available is None:
        return []
    store = lookup.store(level.location_id)
    line = commands.CountLine(
        store_id=store,
        sku=lookup.sku("InventoryItem", level.inventory_item_id),
        on_hand=level.available,
        counted_at=level.updated_at,
    )
    return [commands.set_counts(commands.Origin(PROVIDER, identity, tenant, store), [line])]


def refund_commands(
    identity: EventIdentity, tenant: str, refund: models.Refund, lookup: Lookup
) -> list[CanonicalCommand]:
    """RETURN movements for the refund lines Shopify restocked; nothing for a money-only refund.

    ReturnsService.CompleteReturn completes a return posgate authorised (it has no order or
    store of its own), so a refund made in Shopify is expressed by what it did to stock.
    """
    occurred = refund.processed_at or refund.created_at
    reference = commands.canonical_order_id(PROVIDER, lookup.shop, refund.order_id)
    lines = [
        commands.MovementLine(
            store_id=lookup.store(item.location_id),
            sku=lookup.sku("ProductVariant", item.line_item.variant_id),
            movement_type=inventory.pb.MOVEMENT_TYPE_RETURN,
            delta=item.quantity,
            line=item.id,
            occurred_at=occurred,
            reference=reference,
            vendor_line_id=f"refund_line_item:{item.id}",
        )
        for item in refund.refund_line_items
        if item.restock_type in RESTOCKING
        and item.quantity > 0
        and item.location_id is not None
        and item.line_item.variant_id is not None
    ]
    if not lines:
        return []
    stores = {line.store_id for line in lines}
    origin = commands.Origin(PROVIDER, identity, tenant, stores.pop() if len(stores) == 1 else "")
    return [commands.apply_movements(origin, lines)]


def product_commands(
    identity: EventIdentity, tenant: str, product: models.Product, lookup: Lookup
) -> list[CanonicalCommand]:
    """UpsertItems with the product as an item and its variants."""
    option_names = {option.position: option.name for option in product.options}
    item = catalog.pb.Item(
        sku=lookup.sku("Product", product.id),
        name=product.title,
        description=product.body_html or "",
        category=product.product_type,
        unit=catalog.pb.UNIT_OF_MEASURE_PIECE,
        active=product.status == "active",
        variants=[_variant(variant, option_names, lookup) for variant in product.variants],
    )
    return [commands.upsert_items(commands.Origin(PROVIDER, identity, tenant), [item])]


def _variant(variant: models.Variant, option_names: dict[int, str], lookup: Lookup) -> catalog.pb.Variant:
    values = {1: variant.option1, 2: variant.option2, 3: variant.option3}
    return catalog.pb.Variant(
        variant_id=variant.id,
        sku=lookup.sku("ProductVariant", variant.id),
        name=variant.title,
        attributes={option_names[n]: v for n, v in values.items() if v is not None and n in option_names},
        barcodes=[variant.barcode] if variant.barcode else [],
    )


def order_commands(
    identity: EventIdentity, tenant: str, order: models.Order, lookup: Lookup
) -> list[CanonicalCommand]:
    """SubmitOrder with lines and totals in minor units of the shop currency."""
    store = lookup.store(order.location_id) if order.location_id else ""
    canonical = orders.pb.Order(
        external_order_id=order.id,
        channel=_CHANNELS.get(order.source_name, common.pb.CHANNEL_UNSPECIFIED),
        requested_store_id=store,
        lines=[_line(item, order.currency, lookup) for item in order.line_items],
        totals=_totals(order),
        created_at=common.timestamp(order.created_at),
        updated_at=common.timestamp(order.updated_at),
    )
    if order.financial_status == "paid":
        canonical.payment.CopyFrom(
            orders.pb.Payment(
                state=orders.pb.PAYMENT_STATE_PREPAID, amount=_money(order.total_price, order.currency)
            )
        )
    if order.customer is not None:
        canonical.customer.CopyFrom(_customer(order.customer, order.email))
    if order.shipping_address is not None:
        canonical.fulfilment_type = orders.pb.FULFILMENT_TYPE_DELIVERY
        canonical.delivery_address.CopyFrom(_address(order.shipping_address))
    return [commands.submit_order(commands.Origin(PROVIDER, identity, tenant, store), canonical)]


def _line(item: models.LineItem, currency: str, lookup: Lookup) -> orders.pb.OrderLine:
    # A custom line item (no variant) sells nothing that is stocked, so it has no SKU.
    sku = lookup.sku("ProductVariant", item.variant_id) if item.variant_id else ""
    return orders.pb.OrderLine(
        line_id=item.id,
        sku=sku,
        variant_id=item.variant_id or "",
        name=item.name or item.title,
        quantity=common.quantity(item.quantity),
        unit_price=_money(item.price, currency),
        line_total=_money(item.price * item.quantity - item.total_discount, currency),
    )


def _totals(order: models.Order) -> orders.pb.OrderTotals:
    totals = orders.pb.OrderTotals(
        subtotal=_money(order.subtotal_price, order.currency),
        discount_total=_money(order.total_discounts, order.currency),
        tax_total=_money(order.total_tax, order.currency),
        grand_total=_money(order.total_price, order.currency),
    )
    if order.total_shipping_price_set is not None:
        shipping = order.total_shipping_price_set.shop_money
        totals.delivery_fee.CopyFrom(_money(shipping.amount, shipping.currency_code))
    return totals


def _money(amount: Decimal, currency: str) -> common.pb.Money:
    try:
        return decimal_money(amount, currency)
    except ValueError as error:
        raise PayloadError("invalid_amount", str(error)) from error


def _customer(customer: models.Customer, order_email: str | None) -> orders.pb.Customer:
    names: Sequence[str | None] = (customer.first_name, customer.last_name)
    return orders.pb.Customer(
        customer_id=customer.id,
        display_name=" ".join(name for name in names if name),
        phone=customer.phone or "",
        email=customer.email or order_email or "",
    )


def _address(address: models.Address) -> common.pb.Address:
    result = common.pb.Address(
        lines=[line for line in (address.address1, address.address2) if line],
        locality=address.city or "",
        region=address.province_code or "",
        postal_code=address.zip or "",
        country_code=address.country_code or "",
    )
    if address.latitude is not None and address.longitude is not None:
        # Coordinates are measurements, not money: a float is what GeoPoint holds.
        result.location.CopyFrom(
            common.pb.GeoPoint(latitude=float(address.latitude), longitude=float(address.longitude))
        )
    return result
