"""The GraphQL documents of bench/compare.py, which every server it compares answers: CareBill,
the naive strawberry server and the hand-written endpoint (PostGraphile gets its own twin of
the page, `POSTGRAPHILE_PAGE`)."""

from __future__ import annotations

# An invoice with its client, provider, payments, refunds and history, each with its person.
FIELDS = """
fragment Row on Invoice {
  id number status sentAt dueDate currency
  total { amount currency formatted } amountDue { amount }
  client { id name email } provider { id name email }
  payments { id amount { amount } method reference receivedAt recordedBy { id name } }
  refunds { id amount { amount } reason createdAt createdBy { id name } }
  history { id action at amount { amount } note actor { id name } }
}
"""
PAGE = (
    "query Page($first: Int!) { invoices(first: $first) {"
    " totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ...Row } } } }" + FIELDS
)
ONE = "query One($id: ID!) { invoice(id: $id) { ...Row } }" + FIELDS
# What each client sends first on each of its connections, to open them before the timing.
WARM = "{ __typename }"

# The same page from PostGraphile 4's schema of the same tables: the practice's invoices
# newest first, with the rows their foreign keys name (PostGraphile has no computed amountDue,
# global ids of ours nor the viewer's scope: it reads the columns of the practice's rows).
POSTGRAPHILE_PAGE = """
query Page($first: Int!, $practice: Int!) {
  allInvoices(
    first: $first, condition: { practiceId: $practice }, orderBy: [SENT_AT_DESC, ID_DESC]
  ) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id number status sentAt dueDate currency totalAmount
      client: userByClientId { id name email } provider: userByProviderId { id name email }
      payments: paymentsByInvoiceId(orderBy: ID_ASC) { nodes {
        id amount method reference receivedAt recordedBy: userByRecordedById { id name } } }
      refunds: refundsByInvoiceId(orderBy: ID_ASC) { nodes {
        id amount reason createdAt createdBy: userByCreatedById { id name } } }
      history: invoiceEventsByInvoiceId(orderBy: ID_ASC) { nodes {
        id action at amount note actor: userByActorId { id name } } }
    } }
  }
}
"""
