/**
 * A backup store in an S3-compatible bucket (AWS S3, Backblaze B2, Cloudflare R2, MinIO, Garage,
 * Wasabi). The only importer of the AWS SDK. A backup is streamed as it is produced, never through
 * a temp file: a known length goes up as one PUT with that exact Content-Length; an unknown one
 * (deflate) as a multipart upload whose memory is bounded by the part size. A failed or cancelled
 * upload is aborted, so no multipart upload is left open and nothing is listed.
 */
import { PassThrough, Transform, type Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { AbortedError, DbzipError, StoreError } from '../errors.js';
import type { ResolvedCredentials } from './credentials.js';
import { checkBackupName, newestFirst, parseBackupName } from './names.js';
import type { BackupStore, PutOptions, StoredBackup } from './store.js';
import { displayLocation, type S3Location } from './url.js';

export interface S3StoreConfig {
  location: S3Location;
  credentials: ResolvedCredentials;
  /** Region when the URL names none. */
  region: string;
  /** Endpoint when the URL names none (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL); undefined: AWS. */
  endpoint: string | undefined;
  /** Multipart part size, bytes (at least 5 MiB, S3's minimum). */
  partSizeBytes: number;
}

/** S3 takes at most 5 GiB in one PUT; a larger known length goes up in parts too. */
const SINGLE_PUT_MAX = 5 * 1024 ** 3;
/** Error names S3 (and its imitators) give for credentials that are missing, wrong or not allowed. */
const DENIED = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'InvalidToken', 'ExpiredToken', 'AuthorizationHeaderMalformed', 'CredentialsError']);
const NOT_FOUND = new Set(['NoSuchKey', 'NotFound']);

interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

export class S3Store implements BackupStore {
  readonly kind = 's3' as const;
  readonly display: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #partSize: number;
  readonly #credentialSource: string;

  constructor(config: S3StoreConfig) {
    const { location } = config;
    const endpoint = location.endpoint ?? config.endpoint;
    this.display = displayLocation({ ...location, endpoint });
    this.#bucket = location.bucket;
    this.#prefix = location.prefix === '' ? '' : `${location.prefix}/`;
    this.#partSize = config.partSizeBytes;
    this.#credentialSource = config.credentials.source;
    const { accessKeyId, secretAccessKey, sessionToken } = config.credentials;
    this.#client = new S3Client({
      region: location.region ?? config.region,
      ...(endpoint === undefined ? {} : { endpoint }),
      // Path style for custom endpoints: MinIO and Garage need it, the others accept it.
      forcePathStyle: location.pathStyle ?? endpoint !== undefined,
      credentials: { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) },
      // The SDK's default CRC trailers are not understood by many S3-compatible stores; checksums
      // only where S3 requires them. The zip carries its own CRCs and SHA-256s anyway.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
      // The SDK would print some failures to the console itself; every one reaches the caller as a StoreError.
      logger: { debug() {}, info() {}, warn() {}, error() {}, trace() {} },
    });
  }

  #key(name: string): string {
    // checkBackupName allows one segment of [A-Za-z0-9._-] only: the key is always directly under the prefix.
    return `${this.#prefix}${checkBackupName(name).name}`;
  }

  /** One typed error for anything the SDK throws; messages name the store and the credential source, never a secret. */
  #failure(error: unknown, what: string, name?: string): DbzipError {
    if (error instanceof DbzipError) return error;
    const e = (error ?? {}) as SdkError;
    const status = e.$metadata?.httpStatusCode;
    const detail = `${e.name ?? 'Error'}${e.message !== undefined && e.message !== '' && e.message !== e.name ? `: ${e.message}` : ''}`;
    if (e.name === 'AbortError') return new AbortedError('the upload was cancelled', { cause: error });
    if (DENIED.has(e.name ?? '') || status === 401 || status === 403) {
      return new StoreError('STORE_DENIED', `${what}: ${this.display} refused the credentials from ${this.#credentialSource} (${detail})`, { cause: error });
    }
    if (name !== undefined && (NOT_FOUND.has(e.name ?? '') || status === 404)) return new StoreError('BACKUP_NOT_FOUND', `${name} is not in ${this.display}`, { cause: error });
    if (e.name === 'NoSuchBucket') return new StoreError('STORE_FAILED', `${what}: bucket ${this.#bucket} does not exist at ${this.display}`, { cause: error });
    const network = e.code !== undefined ? ` (${e.code})` : '';
    return new StoreError('STORE_FAILED', `${what}: ${this.display}: ${detail}${network}`, { cause: error });
  }

  async #exists(name: string): Promise<boolean> {
    try {
      await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(name) }));
      return true;
    } catch (error) {
      const failure = this.#failure(error, `cannot check ${name}`, name);
      if (failure.code === 'BACKUP_NOT_FOUND') return false;
      throw failure;
    }
  }

  async put(name: string, body: Readable, options: PutOptions = {}): Promise<{ bytes: number }> {
    const key = this.#key(name);
    const what = `cannot upload ${name}`;
    // One controller for every way the upload can end early: the caller's signal, a source error.
    const controller = new AbortController();
    const onAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let bytes = 0;
    let sourceError: unknown;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        callback(null, chunk);
      },
    });
    // Ending the body early is how an upload is cancelled: lib-storage then fails the part loop and
    // sends AbortMultipartUpload before done() rejects (its own abort() rejects first and aborts
    // later, which would let a caller see an open upload after the promise settled).
    // Errors surface through the returned promise; once the SDK is done with the body nobody else listens.
    counted.on('error', () => {});
    controller.signal.addEventListener('abort', () => counted.destroy(new AbortedError('the upload was cancelled')), { once: true });
    // The SDK pipes the body into the request, and pipe() does not forward errors: without this, a
    // source that fails would leave the request waiting for bytes that never come.
    body.once('error', (error) => {
      sourceError = error;
      controller.abort(error);
    });
    body.pipe(counted);
    try {
      if (options.signal?.aborted === true) throw new AbortedError('the upload was cancelled');
      if (await this.#exists(name)) throw new StoreError('STORE_FAILED', `${name} already exists in ${this.display}`);
      const size = options.size ?? null;
      if (size !== null && size <= SINGLE_PUT_MAX) {
        await this.#client.send(
          new PutObjectCommand({ Bucket: this.#bucket, Key: key, Body: counted, ContentLength: size, ContentType: 'application/zip' }),
          { abortSignal: controller.signal },
        );
      } else {
        const upload = new Upload({
          client: this.#client,
          params: { Bucket: this.#bucket, Key: key, Body: counted, ContentType: 'application/zip' },
          partSize: this.#partSize,
          // One part in flight while the next fills: memory stays near two parts.
          queueSize: 1,
          // On failure or abort, lib-storage sends AbortMultipartUpload: no parts are left to pay for.
          leavePartsOnError: false,
        });
        await upload.done();
      }
      if (sourceError !== undefined) throw sourceError;
      if (size !== null && bytes !== size) {
        await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key })).catch(() => {});
        throw new StoreError('STORE_FAILED', `${what}: sent ${bytes} bytes, expected ${size}; removed`);
      }
      return { bytes };
    } catch (error) {
      body.unpipe(counted);
      body.destroy();
      counted.destroy();
      // The source's own failure (a snapshot that broke) is the reason, not the upload it cut short.
      if (sourceError !== undefined) throw sourceError;
      if (options.signal?.aborted === true) throw new AbortedError('the upload was cancelled', { cause: options.signal.reason });
      throw this.#failure(error, what);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async list(): Promise<StoredBackup[]> {
    const found: StoredBackup[] = [];
    let token: string | undefined;
    try {
      do {
        const page: ListObjectsV2CommandOutput = await this.#client.send(
          // Delimiter: keys in "folders" below the prefix are someone else's, not ours.
          new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: this.#prefix, Delimiter: '/', ...(token === undefined ? {} : { ContinuationToken: token }) }),
        );
        for (const object of page.Contents ?? []) {
          const name = object.Key?.slice(this.#prefix.length) ?? '';
          const parsed = object.Key?.startsWith(this.#prefix) === true ? parseBackupName(name) : null;
          if (parsed !== null) found.push({ ...parsed, size: object.Size ?? 0 });
        }
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
    } catch (error) {
      throw this.#failure(error, 'cannot list backups');
    }
    return found.sort(newestFirst);
  }

  async stat(name: string): Promise<StoredBackup> {
    const parsed = checkBackupName(name);
    try {
      const head = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(name) }));
      return { ...parsed, size: head.ContentLength ?? 0 };
    } catch (error) {
      throw this.#failure(error, `cannot read ${name}`, name);
    }
  }

  async get(name: string, signal?: AbortSignal): Promise<{ stream: Readable; size: number }> {
    const key = this.#key(name);
    try {
      const object = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }), signal === undefined ? {} : { abortSignal: signal });
      return { stream: object.Body as Readable, size: object.ContentLength ?? 0 };
    } catch (error) {
      throw this.#failure(error, `cannot download ${name}`, name);
    }
  }

  getRange(name: string, start: number, end: number): Readable {
    const out = new PassThrough();
    const key = this.#key(name);
    const controller = new AbortController();
    out.once('close', () => controller.abort());
    this.#client
      .send(new GetObjectCommand({ Bucket: this.#bucket, Key: key, Range: `bytes=${start}-${end - 1}` }), { abortSignal: controller.signal })
      .then((object) => {
        const body = object.Body as Readable;
        body.once('error', (error) => out.destroy(this.#failure(error, `cannot read ${name}`, name)));
        body.pipe(out);
      })
      .catch((error: unknown) => out.destroy(this.#failure(error, `cannot read ${name}`, name)));
    return out;
  }

  async delete(name: string): Promise<void> {
    // S3 deletes are idempotent; a name that is not there is still a 404 to the caller.
    await this.stat(name);
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#key(name) }));
    } catch (error) {
      throw this.#failure(error, `cannot delete ${name}`, name);
    }
  }

  close(): void {
    this.#client.destroy();
  }
}
