/**
 * S3 credentials, in this order: given in the options, a credentials file (option, else
 * AWS_SHARED_CREDENTIALS_FILE), the standard AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (+
 * AWS_SESSION_TOKEN) variables. Never from the URL, never logged: only `source` is ever shown.
 * No instance-metadata lookup: dbzip never sends a request to anything but the store.
 */
import fs from 'node:fs/promises';
import { StoreError } from '../errors.js';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface ResolvedCredentials extends S3Credentials {
  /** Where they came from, for messages: "AWS_ACCESS_KEY_ID" or "credentials file /etc/x (profile default)". */
  source: string;
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * The AWS shared-credentials format: `[profile]` sections of `key = value` lines. Only the three
 * keys dbzip needs are read.
 */
export function parseCredentialsFile(text: string, profile: string): S3Credentials | null {
  let section: string | null = null;
  const values: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
    if (header !== null) {
      section = header[1] ?? null;
      continue;
    }
    const kv = /^([A-Za-z_]+)\s*=\s*(.*)$/.exec(line);
    if (kv !== null && section === profile) values[(kv[1] ?? '').toLowerCase()] = kv[2] ?? '';
  }
  const accessKeyId = values['aws_access_key_id'];
  const secretAccessKey = values['aws_secret_access_key'];
  if (accessKeyId === undefined || secretAccessKey === undefined || accessKeyId === '' || secretAccessKey === '') return null;
  const token = values['aws_session_token'];
  return token === undefined || token === '' ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken: token };
}

async function fromFile(file: string, env: Env): Promise<ResolvedCredentials> {
  const profile = env['AWS_PROFILE'] ?? 'default';
  const source = `credentials file ${file} (profile ${profile})`;
  const text = await fs.readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new StoreError('STORE_DENIED', `cannot read the ${source}: ${error.code ?? error.message}`, { cause: error });
  });
  const found = parseCredentialsFile(text, profile);
  if (found === null) throw new StoreError('STORE_DENIED', `the ${source} has no aws_access_key_id and aws_secret_access_key`);
  return { ...found, source };
}

export async function resolveCredentials(given: { credentials?: S3Credentials | undefined; credentialsFile?: string | undefined }, env: Env): Promise<ResolvedCredentials> {
  if (given.credentials !== undefined) {
    const { accessKeyId, secretAccessKey, sessionToken } = given.credentials;
    if (typeof accessKeyId !== 'string' || accessKeyId === '' || typeof secretAccessKey !== 'string' || secretAccessKey === '') {
      throw new StoreError('STORE_DENIED', 'option "credentials" needs accessKeyId and secretAccessKey');
    }
    return { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }), source: 'option "credentials"' };
  }
  if (given.credentialsFile !== undefined) return fromFile(given.credentialsFile, env);
  const id = env['AWS_ACCESS_KEY_ID'];
  const secret = env['AWS_SECRET_ACCESS_KEY'];
  if (id !== undefined && id !== '' && secret !== undefined && secret !== '') {
    const token = env['AWS_SESSION_TOKEN'];
    return { accessKeyId: id, secretAccessKey: secret, ...(token === undefined || token === '' ? {} : { sessionToken: token }), source: 'AWS_ACCESS_KEY_ID' };
  }
  const file = env['AWS_SHARED_CREDENTIALS_FILE'];
  if (file !== undefined && file !== '') return fromFile(file, env);
  throw new StoreError(
    'STORE_DENIED',
    'no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or point AWS_SHARED_CREDENTIALS_FILE (or the credentials-file option) at a credentials file',
  );
}
