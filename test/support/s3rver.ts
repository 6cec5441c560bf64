// A real S3-protocol server on loopback for tests: s3rver in a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/**
 * s3rver runs in a child process with the OpenSSL legacy provider: it encrypts ListObjectsV2 continuation tokens
 * with DES, which Node ≥ 17 refuses without it (every paginated listing would be an InternalError). The child exits
 * when its stdin closes, so it never outlives the test process.
 */
export async function startS3rver(directory: string): Promise<{ port: number; child: ChildProcess }> {
  const script = `
    process.stdin.on('end', () => process.exit(0)).on('error', () => process.exit(0)).resume();
    const S3rver = require('s3rver');
    new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: process.argv[1] })
      .run()
      .then((a) => process.stdout.write(JSON.stringify({ port: a.port }) + '\\n'), (e) => { console.error(e); process.exit(1); });
  `;
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', script, directory], { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await Promise.race([
    once(createInterface({ input: child.stdout }), 'line'),
    once(child, 'exit').then(([code]) => Promise.reject(new Error(`s3rver exited with code ${String(code)}`))),
  ])) as [string];
  return { port: (JSON.parse(line) as { port: number }).port, child };
}
