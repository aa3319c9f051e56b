/** Display helpers for the page: sizes and times a person reads at a glance, exact values in a tooltip. */
export { exactBytes, formatBytes } from '../../format.js';

/** 2024-01-02 03:04 UTC: the server's clock, unambiguous in any browser. */
export const formatTime = (date: Date): string => `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
