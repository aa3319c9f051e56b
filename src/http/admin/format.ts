/** Display helpers for the page: sizes and times a person reads at a glance, exact values in a tooltip. */

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'] as const;

/** 0 bytes, 512 bytes, 4.0 KiB, 504 KiB, 1.2 GiB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${UNITS[unit]}`;
}

/** 516,096 bytes */
export const exactBytes = (bytes: number): string => `${bytes.toLocaleString('en-US')} ${bytes === 1 ? 'byte' : 'bytes'}`;

/** 2024-01-02 03:04 UTC: the server's clock, unambiguous in any browser. */
export const formatTime = (date: Date): string => `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
