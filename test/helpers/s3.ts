/**
 * Real S3-protocol servers on loopback, started by the tests: fauxqs (multipart uploads, aborts,
 * ranged GETs; it does not check credentials) and s3rver (it refuses an unknown access key id).
 * Everything goes through the real AWS SDK.
 */
import { CreateBucketCommand, CreateMultipartUploadCommand, DeleteBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startFauxqs } from 'fauxqs';
import S3rver from 's3rver';

process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';

export const TEST_CREDENTIALS = { accessKeyId: 'dbzip-test-key', secretAccessKey: 'dbzip-test-secret-do-not-log' };

export interface S3Server {
  endpoint: string;
  /** `s3://bucket/prefix?endpoint=…` for this server. */
  url(bucket: string, prefix?: string): string;
  /** AWS_* variables a child process needs to reach it. */
  env: Record<string, string>;
  client: S3Client;
  createBucket(name: string): Promise<void>;
  /**
   * True when the (otherwise empty) bucket still has an open multipart upload: S3 refuses to delete
   * a bucket that has one. The bucket is deleted when it has none.
   */
  hasOpenUpload(bucket: string): Promise<boolean>;
  stop(): Promise<void>;
}

export function clientFor(endpoint: string, credentials = TEST_CREDENTIALS): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function startS3(): Promise<S3Server> {
  const server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  const endpoint = server.address;
  const client = clientFor(endpoint);
  return {
    endpoint,
    url: (bucket, prefix) => `s3://${bucket}${prefix === undefined ? '' : `/${prefix}`}?endpoint=${encodeURIComponent(endpoint)}`,
    env: { AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1' },
    client,
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async hasOpenUpload(bucket) {
      try {
        await client.send(new DeleteBucketCommand({ Bucket: bucket }));
        return false;
      } catch (error) {
        if ((error as { name?: string }).name === 'BucketNotEmpty') return true;
        throw error;
      }
    },
    async stop() {
      client.destroy();
      await server.stop();
    },
  };
}

/** Opens a multipart upload and leaves it open: the control case for hasOpenUpload. */
export async function leaveUploadOpen(client: S3Client, bucket: string, key: string): Promise<void> {
  await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
}

/** s3rver, which knows exactly one access key id (S3RVER) and refuses any other. */
export async function startS3rver(directory: string): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: 'guarded', configs: [] }] });
  const { port } = (await server.run()) as { port: number };
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => server.close() };
}
