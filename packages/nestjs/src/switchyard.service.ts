import { Inject, Injectable } from '@nestjs/common';
import { createFallbackClient, type ChatCompletionWithRequestId, type FallbackClient, type FallbackPromise, type FallbackRequestOptions, type Gateway } from '@switchyard/core';
import type {
  ChatCompletionChunk,
  ChatCompletionCreateParams,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
} from 'openai/resources/chat/completions';
import { SWITCHYARD_GATEWAY } from './switchyard.module-definition';

/**
 * Chat completions with fallback, injectable anywhere. Same engine, fallback rules and log events as the HTTP
 * route; a request that does not succeed throws `FallbackRequestError` (status, OpenAI-style body, attempts).
 */
@Injectable()
export class SwitchyardService {
  /** The SDK-shaped client: `service.client.chat.completions.create(...)`. */
  readonly client: FallbackClient;

  constructor(@Inject(SWITCHYARD_GATEWAY) gateway: Gateway) {
    this.client = createFallbackClient(gateway);
  }

  createChatCompletion(params: ChatCompletionCreateParamsNonStreaming, options?: FallbackRequestOptions): FallbackPromise<ChatCompletionWithRequestId>;
  createChatCompletion(params: ChatCompletionCreateParamsStreaming, options?: FallbackRequestOptions): FallbackPromise<AsyncIterable<ChatCompletionChunk>>;
  createChatCompletion(params: ChatCompletionCreateParams, options?: FallbackRequestOptions): FallbackPromise<ChatCompletionWithRequestId | AsyncIterable<ChatCompletionChunk>>;
  createChatCompletion(params: ChatCompletionCreateParams, options?: FallbackRequestOptions): FallbackPromise<ChatCompletionWithRequestId | AsyncIterable<ChatCompletionChunk>> {
    return this.client.chat.completions.create(params, options);
  }
}
