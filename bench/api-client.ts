// Plain single requests against a server under test: a smoke check before
// loading it (so a wrong token or route fails loudly instead of producing a
// benchmark of 401s) and topping up rows before the list scenario.
export interface Endpoint {
  /** Full URL of the collection, e.g. http://127.0.0.1:1234/api/base/organizations */
  collectionUrl: string;
  headers: Record<string, string>;
}

export const CREATE_BODY = JSON.stringify({ name: 'Acme 123' });
export const LIST_LIMIT = 50;

async function call(endpoint: Endpoint, method: 'GET' | 'POST', url: string): Promise<{ status: number; json: unknown }> {
  const response = await fetch(url, {
    method,
    headers: endpoint.headers,
    body: method === 'POST' ? CREATE_BODY : undefined,
  });
  const text = await response.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // keep the text for the error message
  }
  return { status: response.status, json };
}

export async function createOne(endpoint: Endpoint): Promise<void> {
  const { status, json } = await call(endpoint, 'POST', endpoint.collectionUrl);
  if (status !== 201) throw new Error(`POST ${endpoint.collectionUrl} -> ${status} ${JSON.stringify(json).slice(0, 300)}`);
}

/** Number of rows in one list-50 page. */
export async function listPageSize(endpoint: Endpoint): Promise<number> {
  const url = `${endpoint.collectionUrl}?limit=${LIST_LIMIT}`;
  const { status, json } = await call(endpoint, 'GET', url);
  if (status !== 200) throw new Error(`GET ${url} -> ${status} ${JSON.stringify(json).slice(0, 300)}`);
  if (typeof json !== 'object' || json === null || !('data' in json) || !Array.isArray(json.data)) {
    throw new Error(`GET ${url} did not return {"data": [...]}`);
  }
  return json.data.length;
}

/** The list scenario must return full pages; create a few hundred rows if the table is short. */
export async function ensureRows(endpoint: Endpoint, minRows = 300): Promise<void> {
  if ((await listPageSize(endpoint)) >= LIST_LIMIT) return;
  for (let i = 0; i < minRows; i++) await createOne(endpoint);
}
