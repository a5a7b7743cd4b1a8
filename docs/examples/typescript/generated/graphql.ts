/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
export type AlertKind =
  | 'INVOICE_FORGIVEN'
  | 'INVOICE_PAID'
  | 'INVOICE_REFUNDED'
  | 'INVOICE_REMINDER'
  | 'INVOICE_SENT'
  | 'INVOICE_VOIDED'
  | 'PAYMENT_FAILED'
  | 'PAYMENT_RECORDED';

export type ErrorCode =
  | 'CONFLICT'
  | 'FORBIDDEN'
  | 'INVALID_STATE'
  | 'NOT_CONFIGURED'
  | 'NOT_FOUND'
  | 'PAYMENT_DECLINED'
  | 'PROCESSOR_UNAVAILABLE'
  | 'TOO_MANY_ATTEMPTS'
  | 'VALIDATION';

export type InvoiceStatus =
  | 'FORGIVEN'
  | 'PAID'
  | 'REFUNDED'
  | 'UNPAID'
  | 'VOID';

export type Role =
  | 'ADMIN'
  | 'CLIENT'
  | 'PROVIDER';

export type LoginMutationVariables = Exact<{
  email: string;
  password: string;
}>;


export type LoginMutation = { login: { token: string | null, viewer: { role: Role } | null, errors: Array<{ code: ErrorCode, field: string | null, message: string }> } };

export type UnpaidQueryVariables = Exact<{ [key: string]: never; }>;


export type UnpaidQuery = { invoices: { totalCount: number, edges: Array<{ node: { id: string, number: string, amountDue: { amount: number, currency: string, formatted: string } } }> } };

export type AlertsSubscriptionVariables = Exact<{
  after?: string | number | null | undefined;
}>;


export type AlertsSubscription = { invoiceAlerts: { id: string, kind: AlertKind, invoice: { number: string, status: InvoiceStatus } } };
