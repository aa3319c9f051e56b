/**
 * One size style everywhere (CLI, verify, restore, the admin page and its script): binary units,
 * as the benchmark figures use. `formatBytes` is self-contained on purpose: the page's script embeds
 * its source (`formatBytes.toString()`), so the browser formats exactly as the server does.
 */

/** 0 bytes, 1 byte, 512 bytes, 4.0 KiB, 504 KiB, 1.2 GiB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** 516,096 bytes: the exact figure, for tooltips and where every byte matters. */
export const exactBytes = (bytes: number): string => `${bytes.toLocaleString('en-US')} ${bytes === 1 ? 'byte' : 'bytes'}`;
