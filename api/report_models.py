"""Answer shapes of the reports (seeds/003) and analytics, for the OpenAPI document."""

from __future__ import annotations

from pydantic import Field

from api.responses import Money, Pagination
from api.schemas import ResponseBody


class Period(ResponseBody):
    from_date: str = Field(examples=["2026-11-01"])
    to_date: str = Field(examples=["2026-11-30"])


class Scope(ResponseBody):
    seller_id: str | None = Field(description="the seller whose items are counted; null: all")


class PeriodSales(ResponseBody):
    period: str = Field(examples=["2026-11-02", "2026-W45", "2026-11"])
    sales: Money
    orders: int
    units: int | None = None
    average_order_value: Money | None = None


class TopProduct(ResponseBody):
    product_id: str
    name: str
    quantity: int
    revenue: Money


class CategorySales(ResponseBody):
    category_id: str
    category: str
    quantity: int
    revenue: Money


class SellerSales(ResponseBody):
    seller_id: str
    shop_name: str | None
    orders: int
    units: int
    revenue: Money


class SalesSummary(ResponseBody):
    """seeds/003 sales summary; ``includeDetails=true`` adds units, per-period averages and
    the breakdowns by category (and, for the platform, by seller)."""

    period: Period
    total_sales: Money
    total_orders: int
    average_order_value: Money
    sales_by_period: list[PeriodSales]
    top_selling_products: list[TopProduct]
    total_units: int | None = None
    sales_by_category: list[CategorySales] | None = None
    sales_by_seller: list[SellerSales] | None = None


class ProductSalesLine(ResponseBody):
    product_id: str
    name: str
    category: str
    quantity: int
    revenue: Money
    average_unit_price: Money


class ProductSales(ResponseBody):
    period: Period
    product_sales: list[ProductSalesLine]
    total_quantity_sold: int
    total_revenue: Money
    sales_by_category: list[CategorySales]


class SalesFigures(ResponseBody):
    revenue: Money
    orders: int
    units: int
    average_order_value: Money


class SalesChange(ResponseBody):
    revenue_percent: float | None
    orders_percent: float | None
    units_percent: float | None


class SalesPoint(ResponseBody):
    period: str
    revenue: Money
    orders: int
    units: int
    average_order_value: Money


class RankedProduct(ResponseBody):
    product_id: str
    name: str
    category: str
    category_id: str
    quantity: int
    revenue: Money
    average_unit_price: Money


class SalesAnalytics(ResponseBody):
    scope: Scope
    period: Period
    previous_period: Period
    revenue: Money
    orders: int
    units: int
    average_order_value: Money
    previous: SalesFigures
    change: SalesChange
    series: list[SalesPoint]
    by_category: list[CategorySales]
    top_products: list[RankedProduct]
    by_seller: list[SellerSales] | None = None


class FunnelRates(ResponseBody):
    cart_to_checkout: float | None
    checkout_to_paid: float | None
    paid_to_delivered: float | None
    expired_share: float | None
    cancelled_share: float | None


class FunnelPoint(ResponseBody):
    period: str
    carts: int
    checkouts: int
    paid: int
    delivered: int
    expired: int
    cancelled: int
    rates: FunnelRates


class Conversion(ResponseBody):
    scope: Scope
    period: Period
    carts: int
    checkouts: int
    paid: int
    delivered: int
    expired: int
    cancelled: int
    rates: FunnelRates
    series: list[FunnelPoint]


class Percentiles(ResponseBody):
    p50: int | None = Field(description="hours (whole hours, rounded up)")
    p90: int | None


class ShippingFigures(ResponseBody):
    orders_paid: int
    orders_shipped: int
    shipped_within7_days: int
    shipped_within7_days_share: float | None
    hours_to_first_shipment: Percentiles
    hours_shipment_to_delivery: Percentiles
    parcels: int
    parcels_delivered: int
    reminders_sent: int
    orders_delivered: int
    auto_delivered: int
    auto_delivered_share: float | None


class SellerShipping(ShippingFigures):
    seller_id: str
    shop_name: str | None


class Shipping(ResponseBody):
    scope: Scope
    period: Period
    orders_paid: int | None = None
    orders_shipped: int | None = None
    shipped_within7_days: int | None = None
    shipped_within7_days_share: float | None = None
    hours_to_first_shipment: Percentiles | None = None
    hours_shipment_to_delivery: Percentiles | None = None
    parcels: int | None = None
    parcels_delivered: int | None = None
    reminders_sent: int | None = None
    orders_delivered: int | None = None
    auto_delivered: int | None = None
    auto_delivered_share: float | None = None
    sellers: list[SellerShipping] | None = None


class Customer(ResponseBody):
    buyer_id: str
    username: str | None
    display_name: str | None
    orders: int
    spend: Money
    average_order_value: Money
    first_order_at: str | None
    last_order_at: str | None


class Customers(ResponseBody):
    scope: Scope
    customers: list[Customer]
    pagination: Pagination


class WarehouseStock(ResponseBody):
    warehouse_id: str
    code: str | None
    on_hand: int
    reserved: int
    available: int


class ProductStock(ResponseBody):
    product_id: str
    name: str
    warehouses: list[WarehouseStock]
    on_hand: int
    reserved: int
    available: int
    units_sold7_days: int
    units_sold30_days: int
    days_of_cover: float | None
    low_stock_threshold: int
    last_sold_day: str | None


class StockBrief(ResponseBody):
    product_id: str
    name: str
    available: int
    low_stock_threshold: int
    units_sold30_days: int
    last_sold_day: str | None


class InventoryHealth(ResponseBody):
    scope: Scope
    as_of: str
    default_low_stock_threshold: int
    dead_stock_days: int
    low_stock: list[StockBrief]
    dead_stock: list[StockBrief]
    products: list[ProductStock]
    pagination: Pagination


class LowStockThreshold(ResponseBody):
    product_id: str
    low_stock_threshold: int | None
    effective_threshold: int
    available: int
    low: bool
