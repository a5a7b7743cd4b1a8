// A TypeScript client of CareBill: log in and read over HTTP with fetch (GraphQL over HTTP's
// application/graphql-response+json), then follow the invoice alerts with graphql-ws, resuming
// after the last alert seen. The types come from schema.graphql (npm run codegen).
//
//   npm ci && npm run codegen && npm start -- http://127.0.0.1:8000 provider@demo.test carebill-demo 1
import { createClient } from 'graphql-ws';
import WebSocket from 'ws'; // Node only: browsers and React Native have WebSocket built in
import type {
  AlertsSubscription,
  AlertsSubscriptionVariables,
  LoginMutation,
  LoginMutationVariables,
  UnpaidQuery,
  UnpaidQueryVariables,
} from './generated/graphql.js';

const LOGIN = /* GraphQL */ `
  mutation Login($email: String!, $password: String!) {
    login(email: $email, password: $password) {
      token
      viewer { role }
      errors { code field message }
    }
  }
`;

const UNPAID = /* GraphQL */ `
  query Unpaid {
    invoices(first: 5, filter: { status: [UNPAID] }) {
      totalCount
      edges { node { id number amountDue { amount currency formatted } } }
    }
  }
`;

const ALERTS = /* GraphQL */ `
  subscription Alerts($after: ID) {
    invoiceAlerts(after: $after) { id kind invoice { number status } }
  }
`;

interface TopLevelError {
  message: string;
  extensions?: { code?: string; requestId?: string };
}

/** Top-level errors: branch on `extensions.code` (UNAUTHENTICATED: log in again). */
class CareBillError extends Error {
  constructor(readonly errors: TopLevelError[]) {
    super(errors.map((e) => `${e.extensions?.code}: ${e.message}`).join('; '));
  }
}

async function graphql<TData, TVariables>(
  url: string,
  query: string,
  variables: TVariables,
  token?: string,
): Promise<TData> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/graphql-response+json',
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  if (response.status === 503) throw new Error('CareBill is unavailable: retry later');
  const body = (await response.json()) as { data?: TData | null; errors?: TopLevelError[] };
  if (body.errors?.length) throw new CareBillError(body.errors);
  return body.data as TData;
}

function emit(fields: Record<string, unknown>): void {
  console.log(JSON.stringify(fields));
}

async function main(): Promise<void> {
  const [baseUrl, email, password, count = '1', after] = process.argv.slice(2);
  const url = `${baseUrl.replace(/\/$/, '')}/graphql`;

  const { login } = await graphql<LoginMutation, LoginMutationVariables>(url, LOGIN, {
    email,
    password,
  });
  // Expected refusals are data: payload errors with a code, a field and a message.
  if (login.errors.length || !login.token) throw new Error(`login refused: ${login.errors[0]?.code}`);
  const token = login.token;
  emit({ role: login.viewer?.role });

  const { invoices } = await graphql<UnpaidQuery, UnpaidQueryVariables>(url, UNPAID, {}, token);
  emit({ unpaid: invoices.totalCount });

  const client = createClient({
    url: url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
  });
  const variables: AlertsSubscriptionVariables = { after: after ?? null };
  const alerts = client.iterate<AlertsSubscription>({ query: ALERTS, variables });
  emit({ subscribed: true });
  let seen = 0;
  for await (const result of alerts) {
    if (result.errors?.length) throw new CareBillError(result.errors as TopLevelError[]);
    const alert = result.data?.invoiceAlerts;
    emit({ alert }); // keep alert.id: resume with after=<it> when reconnecting
    seen += 1;
    if (seen === Number(count)) break;
  }
  await client.dispose();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
