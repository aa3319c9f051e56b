/**
 * `--encrypt-to`, `--identity` and the passphrase flags (see docs/encryption.md). Keys come from files
 * or the terminal, never from a flag's value: a passphrase or secret key on the command line would show
 * in `ps` and in shell history. Messages name the flag and the file, never a key.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { AbortedError, OptionsError } from '../errors.js';
import type { DecryptOptions, EncryptOptions } from '../options.js';
import { writeAll, type CliIo } from './io.js';

export interface EncryptFlags {
  encryptTo?: string[];
  passphrase?: boolean;
  passphraseFile?: string;
}

export interface DecryptFlags {
  identity?: string[];
  passphrase?: boolean;
  passphraseFile?: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function addEncryptFlags(command: Command): Command {
  return command
    .option('--encrypt-to <recipient|file>', 'encrypt with age to this public key (age1…) or to every key in this file (repeatable); writes .zip.age', collect)
    .option('--passphrase', 'encrypt with a passphrase typed at a prompt (asked twice)')
    .option('--passphrase-file <file>', 'encrypt with the passphrase on the first line of this file');
}

export function addDecryptFlags(command: Command): Command {
  return command
    .option('--identity <file>', 'age identity file (AGE-SECRET-KEY-1… lines, as age-keygen writes) for a .zip.age (repeatable)', collect)
    .option('--passphrase', 'the archive was encrypted with a passphrase: ask for it at a prompt')
    .option('--passphrase-file <file>', 'the archive was encrypted with the passphrase on the first line of this file');
}

/** Non-empty lines that are not `#` comments, as `age -R` and `age -i` read their files. */
function keyLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

async function readText(flag: string, file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new OptionsError(`${flag}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
}

/** Each value is a recipient (`age1…`) or a file of them; `from` names the flag or variable. */
export async function readRecipients(values: readonly string[], cwd: string, from: string): Promise<string[]> {
  const recipients: string[] = [];
  for (const value of values) {
    if (value.startsWith('age1')) {
      recipients.push(value);
      continue;
    }
    const file = path.resolve(cwd, value);
    const lines = keyLines(await readText(from, file));
    if (lines.length === 0) throw new OptionsError(`${from}: ${file} holds no recipient`);
    lines.forEach((line, i) => {
      if (line.startsWith('AGE-SECRET-KEY-')) {
        throw new OptionsError(`${from}: ${file} holds a secret key (line ${i + 1}); give the public key (age1…, "age-keygen -y ${path.basename(file)}" prints it)`);
      }
      if (!line.startsWith('age1')) throw new OptionsError(`${from}: ${file}, line ${i + 1} is not an age recipient (age1…)`);
    });
    recipients.push(...lines);
  }
  return recipients;
}

/** Every `AGE-SECRET-KEY-1…` line of each identity file. */
export async function readIdentities(files: readonly string[], cwd: string, from: string): Promise<string[]> {
  const identities: string[] = [];
  for (const value of files) {
    const file = path.resolve(cwd, value);
    const lines = keyLines(await readText(from, file));
    if (lines.length === 0) throw new OptionsError(`${from}: ${file} holds no identity`);
    lines.forEach((line, i) => {
      if (line.startsWith('age1')) throw new OptionsError(`${from}: ${file}, line ${i + 1} is a public key (recipient); decrypting needs the secret key file from age-keygen`);
      if (!line.startsWith('AGE-SECRET-KEY-1')) throw new OptionsError(`${from}: ${file}, line ${i + 1} is not an X25519 age identity (AGE-SECRET-KEY-1…)`);
    });
    identities.push(...lines);
  }
  return identities;
}

async function readPassphraseFile(file: string): Promise<string> {
  const first = (await readText('--passphrase-file', file)).split(/\r?\n/)[0] ?? '';
  if (first === '') throw new OptionsError(`--passphrase-file: the first line of ${file} is empty`);
  return first;
}

type TtyInput = CliIo['stdin'] & { setRawMode?: (raw: boolean) => unknown };

/** Reads one line from the terminal without echoing it. Ctrl-C cancels. */
async function readHidden(io: CliIo, prompt: string): Promise<string> {
  const input = io.stdin as TtyInput;
  await writeAll(io.stderr, prompt);
  input.setRawMode?.(true);
  input.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = '';
      const onData = (data: Buffer | string) => {
        for (const ch of data.toString()) {
          if (ch === '\r' || ch === '\n') {
            input.off('data', onData);
            resolve(typed);
            return;
          }
          if (ch === '\u0003') {
            input.off('data', onData);
            reject(new AbortedError('cancelled at the passphrase prompt'));
            return;
          }
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
          else typed += ch;
        }
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode?.(false);
    input.pause();
    await writeAll(io.stderr, '\n');
  }
}

async function promptPassphrase(io: CliIo, confirm: boolean): Promise<string> {
  if (io.stdin.isTTY !== true) throw new OptionsError('--passphrase needs a terminal to ask on; without one use --passphrase-file <file>');
  const first = await readHidden(io, 'Passphrase: ');
  if (first === '') throw new OptionsError('--passphrase: the passphrase is empty');
  if (confirm && (await readHidden(io, 'Passphrase (again): ')) !== first) throw new OptionsError('--passphrase: the two passphrases differ');
  return first;
}

async function passphraseFrom(flags: { passphrase?: boolean; passphraseFile?: string }, io: CliIo, confirm: boolean): Promise<string | undefined> {
  if (flags.passphrase === true && flags.passphraseFile !== undefined) throw new OptionsError('--passphrase and --passphrase-file: give one');
  if (flags.passphraseFile !== undefined) return readPassphraseFile(path.resolve(io.cwd, flags.passphraseFile));
  if (flags.passphrase === true) return promptPassphrase(io, confirm);
  return undefined;
}

export async function toEncryptOptions(flags: EncryptFlags, io: CliIo): Promise<EncryptOptions | undefined> {
  const passphrase = await passphraseFrom(flags, io, true);
  if (passphrase !== undefined) {
    if (flags.encryptTo !== undefined) throw new OptionsError('--encrypt-to and a passphrase: age encrypts to recipients or to one passphrase, not both');
    return { passphrase };
  }
  if (flags.encryptTo === undefined) return undefined;
  return { recipients: await readRecipients(flags.encryptTo, io.cwd, '--encrypt-to') };
}

export async function toDecryptOptions(flags: DecryptFlags, io: CliIo): Promise<DecryptOptions | undefined> {
  const passphrase = await passphraseFrom(flags, io, false);
  if (passphrase !== undefined) {
    if (flags.identity !== undefined) throw new OptionsError('--identity and a passphrase: give one');
    return { passphrase };
  }
  if (flags.identity === undefined) return undefined;
  return { identities: await readIdentities(flags.identity, io.cwd, '--identity') };
}
