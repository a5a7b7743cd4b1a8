// GraphiQL for CareBill: queries and mutations over HTTP, subscriptions over
// graphql-transport-ws, both with the headers of GraphiQL's Headers editor — put
// {"Authorization": "Bearer <token>"} there after `login`. Every asset comes from this server.
(function () {
  "use strict";
  const page = new URL(window.location.href);
  page.search = "";
  page.hash = "";
  const httpUrl = page.toString();
  const wsUrl = httpUrl.replace(/^http/, "ws");

  const defaultQuery = `# CareBill's GraphiQL. Log in (every demo user's password is carebill-demo),
# then put {"Authorization": "Bearer <token>"} in the Headers tab below.
mutation Login {
  login(email: "admin@demo.test", password: "carebill-demo") {
    token
    viewer { role roles practice { name } }
    errors { code message }
  }
}

query Invoices {
  invoices(first: 10) {
    totalCount
    edges { node { number status total { formatted } amountDue { formatted } } }
  }
}

subscription Alerts {
  invoiceAlerts { id kind occurredAt invoice { number status } }
}
`;

  // A fetcher per operation, so that a subscription's connection_init carries the headers
  // the Headers editor holds when it starts (GraphiQL passes them to HTTP requests only).
  function fetcher(params, options) {
    const headers = (options && options.headers) || {};
    const perOperation = GraphiQL.createFetcher({
      url: httpUrl,
      subscriptionUrl: wsUrl,
      wsConnectionParams: headers,
    });
    return perOperation(params, options);
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      inputValueDeprecation: true,
    }),
  );
})();
