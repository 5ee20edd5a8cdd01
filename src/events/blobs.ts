/**
 * Large payloads live outside the database: message bodies, events and results
 * above the inline threshold are written here and referenced by key. The interface
 * is what an S3-compatible store would implement; the default keeps files under
 * <data>/blobs.
 */
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface BlobStore {
  put(key: string, data: string | Buffer): Promise<void>;
  get(key: string): Promise<Buffer>;
  size(key: string): Promise<number>;
  delete(key: string): Promise<void>;
}

export class FileBlobStore implements BlobStore {
  constructor(private readonly dir: string) {}

  private file(key: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(key)) throw new Error(`invalid blob key "${key}"`);
    return path.join(this.dir, key.slice(-2), key);
  }

  async put(key: string, data: string | Buffer): Promise<void> {
    const file = this.file(key);
    await mkdir(path.dirname(file), { recursive: true });
    // Written before the record that references it is committed, so a crash leaves at worst an orphan file.
    await writeFile(file, data, { flush: true });
  }

  get(key: string): Promise<Buffer> {
    return readFile(this.file(key));
  }

  async size(key: string): Promise<number> {
    return (await stat(this.file(key))).size;
  }

  async delete(key: string): Promise<void> {
    await rm(this.file(key), { force: true });
  }
}
