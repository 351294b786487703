/**
 * Every sentence the bot shows people, in English and Simplified Chinese (Qwen-Image's users
 * often write Chinese prompts). Lookups fall back to English, key by key.
 */
import * as commands from './i18n/commands.ts';
import * as install from './i18n/install.ts';
import * as requests from './i18n/requests.ts';
import * as review from './i18n/review.ts';
import * as settings from './i18n/settings.ts';
import * as tools from './i18n/tools.ts';

/** English is complete: every key, and what any other locale falls back to. One file per area, in i18n/. */
const en = { ...requests.en, ...review.en, ...settings.en, ...commands.en, ...install.en, ...tools.en };

export type MessageKey = keyof typeof en;

const zhCN: Partial<Record<MessageKey, string>> = {
  ...requests.zhCN,
  ...review.zhCN,
  ...settings.zhCN,
  ...commands.zhCN,
  ...install.zhCN,
  ...tools.zhCN,
};

const TABLES: Record<string, Partial<Record<MessageKey, string>>> = { 'zh-CN': zhCN };

export type Params = Record<string, string | number>;

/** Discord sends locales like `zh-CN`, `en-US`, `en-GB`; anything unknown reads English. */
export function t(locale: string | undefined, key: MessageKey, params: Params = {}): string {
  const template = (locale && TABLES[locale]?.[key]) || en[key];
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

/** Localisations for command metadata, in Discord's `{ locale: text }` shape. */
export function localizations(key: MessageKey): Record<string, string> {
  return Object.fromEntries(
    Object.entries(TABLES).flatMap(([locale, table]) => (table[key] ? [[locale, table[key]]] : [])),
  );
}

export const LOCALES = ['en-US', ...Object.keys(TABLES)];
