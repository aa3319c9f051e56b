/**
 * Turns the files that run inside measured processes (bench child, CLI probe, writer) into plain
 * JavaScript, one file each, with TypeScript's own transpiler (a dev dependency already).
 * Running them under tsx would put its loader thread and ~35 MB of RSS into every measurement.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Everything child.ts, probe.ts and writer-child.ts import at run time (type imports are erased). */
const RUNTIME_FILES = ['child.ts', 'ceiling.ts', 'measure.ts', 'probe.ts', 'writer-child.ts'];

export interface CompiledScripts {
  child: string;
  probe: string;
  writer: string;
}

export function compileRuntime(outDir: string): CompiledScripts {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  for (const file of RUNTIME_FILES) {
    const source = fs.readFileSync(path.join(HERE, file), 'utf8');
    const { outputText, diagnostics } = ts.transpileModule(source, {
      fileName: file,
      reportDiagnostics: true,
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: true },
    });
    if (diagnostics !== undefined && diagnostics.length > 0) {
      throw new Error(`${file}: ${diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('; ')}`);
    }
    fs.writeFileSync(path.join(outDir, file.replace(/\.ts$/, '.js')), outputText);
  }
  return { child: path.join(outDir, 'child.js'), probe: path.join(outDir, 'probe.js'), writer: path.join(outDir, 'writer-child.js') };
}
